"""The BHXH knowledge: topics, entries, the parameter table, calculators."""
