"""The command line: click commands and console output; the only place that imports click."""
