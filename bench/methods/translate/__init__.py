"""Query translation: a word translation table (IBM Model 1, :mod:`bench.methods.translate.ibm1`) used as
probabilistic structured queries (:mod:`bench.methods.translate.psq`), and NMT."""
