"""Everything that meets Kaggle: the API client, the submission file, the record of uploads."""
