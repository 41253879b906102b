"""First-stage retrieval and reranking: BM25 (Lucene via pyserini) and dense encoders."""
