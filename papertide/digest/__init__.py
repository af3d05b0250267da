"""Email digests: "trending papers in your inbox", sent exactly once.

* :mod:`.periods`: which lists a daily or weekly digest covers and when it goes out.
* :mod:`.subscriptions`: double opt-in subscribers, preferences, unsubscribing, bounces.
* :mod:`.edition`: a period's papers, ranked by the community, with why they trend.
* :mod:`.selection`: what one subscriber gets: the top papers their rules let through, then
  "picked for you" from their account's feed; papers already seen or sent are left out.
* :mod:`.render`: the email itself, an HTML and a plain-text part, and its headers.
* :mod:`.outbox`: one row per (subscription, period); :mod:`.sender` delivers them.
"""
