"""Community: upvotes, threaded comments with safe markdown and math, and profile pages.

- :mod:`papertide.community.votes`: one vote per user per paper (enforced by the database),
  the shown total recomputed in the same transaction.
- :mod:`papertide.community.markdown`: comment markdown to sanitized HTML, math kept for KaTeX,
  ``@username`` mentions linked.
- :mod:`papertide.community.comments`: post, reply, edit (within a window), soft delete, threads.
- :mod:`papertide.community.profiles`: what a user's public page shows.
- :mod:`papertide.community.papers`: which papers the community may act on (visible ones).
- :mod:`papertide.community.paper_view`: the votes and thread the paper page shows.
"""
