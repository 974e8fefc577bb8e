"""Performance harnesses (not part of the test run). Each prints ratios measured in one run."""
