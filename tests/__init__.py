"""The test suites. A package, so that helpers are imported by their full name
(`tests.unit.service.fakes`), never through `sys.path`."""
