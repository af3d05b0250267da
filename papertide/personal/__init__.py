"""Personal feeds: saves in folders, dismissals and seen marks, interests, the "for you" ranker."""
