from batchkit.cli.app import main

main()
