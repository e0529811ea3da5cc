"""The video asset: its factory, its options, the run of one materialization, the dry run and the checks."""
