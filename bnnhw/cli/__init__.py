"""The `bnnhw` command line."""
