"""Query translation: a word translation table (IBM Model 1, :mod:`bench.translate.ibm1`) used as
probabilistic structured queries (:mod:`bench.translate.psq`), and NMT."""
