"""The `autoperi` command line: thin commands that build library facades and print results."""
