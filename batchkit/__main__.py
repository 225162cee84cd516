from batchkit.cli.console import batchkit

batchkit()
