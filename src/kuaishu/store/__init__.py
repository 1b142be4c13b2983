"""Dataset versions (资源池): immutable Parquet snapshots of a catalog entry's data, served by DuckDB."""
