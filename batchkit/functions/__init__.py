"""Function jobs: a Python callable and its arguments travel to a job and its result comes back.

    <job folder>/function.pkl           the payload (`payload.pack_call` / `payload.pack_map`)
    <job folder>/batchkit_runner.py     the runner (`runner.py`, staged as source)
    <job folder>/results/<index>.pkl    what the runner wrote back (`results.decode`)

The job itself is an ordinary inline job of the one wrapper: `python3 batchkit_runner.py` in the
working directory the wrapper filled from the job folder.
"""
