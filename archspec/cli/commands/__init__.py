"""One module per subcommand: ``HELP``, ``EXIT_1``, ``NEEDS``, ``add_arguments(parser)``, ``run(args) -> int``."""
