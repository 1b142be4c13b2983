"""Collection (采集汇聚): sources, mapping, loads as jobs, quarantine of rows that fail."""
