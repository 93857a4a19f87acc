"""Sites as spreadsheets: XLSX and CSV exports, and imports of the same files.

`columns` says which columns a caller's file has (from the catalog and the policy) and
how a value becomes a cell and back; `writers` and `readers` know the file formats
(reusable by other exports); `export` reads sites as the Features API does and `load`
writes them through the same path as its editing routes.
"""
