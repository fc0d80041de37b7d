"""From a source to segmented contacts: pull, cache, orders that count, one row per contact."""
