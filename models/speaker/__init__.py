"""Speaker embeddings (``encoder.py``) and diarization from them (``diarize.py``)."""
