"""The command line: `resorption …` (commands.py parses, the other modules do)."""
