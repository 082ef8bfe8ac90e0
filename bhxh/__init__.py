"""The `bhxh` command line: the composition root above `bot/`, `storage/` and `admin_api/`."""
