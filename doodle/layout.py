"""Kaggle's file layout for Quick, Draw! (what the download stage writes and the shard
stage reads)."""

TRAIN_DIR = "train_simplified"  # one <word>.csv per class
TEST_FILE = "test_simplified.csv"
SOLUTION_FILE = "test_solution.csv"  # labels for local scoring (Kaggle keeps them hidden)
TRAIN_COLUMNS = ["countrycode", "drawing", "key_id", "recognized", "timestamp", "word"]
TEST_COLUMNS = ["key_id", "countrycode", "drawing"]
DATASET_FILE = "dataset.json"  # what the data is (written by download, kept by shard)
COMPETITION_TEST_ROWS = 112_199  # rows of the competition's test_simplified.csv
