from videogen_cli.cli.main import main

main()
