"""Parts of ``benchmarks/stream_latency.py``: the stream under test (``bench``), what
arrives on its output (``follower``), the three measurements (``modes``), and a
stand-in scorer (``fake_scorer``, loaded by the stream process through ``--scorer``)."""
