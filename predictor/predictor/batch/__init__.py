"""Batch scoring: a file of raw records in, predictions and rejects out (``python -m predictor.batch``).

Layering: ``cli`` -> ``job`` -> (``sources`` -> ``lines``, ``arrow_columns`` -> ``chunk``;
``vectorise``; ``engine`` / ``remote``; ``sinks``; ``checkpoint``; ``progress``); ``settings``
and ``errors`` are read by all.
"""
