"""Kaggle's files to shards: the source, download, shard and tfrecord stages."""
