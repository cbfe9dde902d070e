"""The fault suite (`make faults`): real components, real faults, checked guarantees. Not part of
`make test` (pytest collects only test_*.py here: the checks' own tests)."""
