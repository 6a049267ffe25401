"""The composition root: the `szt` command and what assembles every package (above the front doors)."""
