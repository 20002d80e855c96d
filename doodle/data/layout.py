"""Kaggle's file layout for Quick, Draw! (what the download stage writes and the shard
stage reads).

Two layouts of the same drawings: *simplified* (``train_simplified/``, integer coordinates
0-255, Google's simplification) and *raw* (``train_raw/``, the screen coordinates and a time
in milliseconds for every point, as recorded; the same columns)."""

TRAIN_DIR = "train_simplified"  # one <word>.csv per class
TEST_FILE = "test_simplified.csv"
TRAIN_RAW_DIR = "train_raw"  # one <word>.csv per class, strokes [[x...], [y...], [t...]]
TEST_RAW_FILE = "test_raw.csv"  # the same key_ids as test_simplified.csv
SOLUTION_FILE = "test_solution.csv"  # labels for local scoring (Kaggle keeps them hidden)
LAYOUTS = ("simplified", "raw")
TRAIN_COLUMNS = ["countrycode", "drawing", "key_id", "recognized", "timestamp", "word"]
TEST_COLUMNS = ["key_id", "countrycode", "drawing"]
DATASET_FILE = "dataset.json"  # what the data is (written by download, kept by shard)
COMPETITION_TEST_ROWS = 112_199  # rows of the competition's test_simplified.csv
