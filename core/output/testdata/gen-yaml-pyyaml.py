#!/usr/bin/env python3
"""Writes yaml-pyyaml.json: documents and the text PyYAML's
yaml.dump(doc, default_flow_style=False) gives for them, which the
original Lago's `-f yaml` printed. TestYAMLMatchesPyYAML checks ours
against it. Run from this folder: python3 gen-yaml-pyyaml.py"""
import json
import yaml

STRINGS = [
    "", " ", "a", "123456", "09", "0o17", "1e3", "1.5", "1.", ".5", "-.inf",
    ".NaN", "0x1F", "1_000", "1:20", "190:20:30.15", "yes", "No", "on", "OFF",
    "y", "n", "true", "null", "~", "Null", "<<", "=", "!", "&", "*",
    "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5",
    "a b", " a", "a ", "a\nb", "a\n\nb", "\na", "a\n", "a \nb", "a\n b",
    "it's", "'q'", '"dq"', "a\tb", "caf\u00e9", "x\u2028y", "\x00", "\x1b[0m",
    "#c", "a #c", "a#c", "a: b", "a:b", "a:", ":a", "- a", "-a", "-", "?",
    "? a", "?a", "---", "...", "--- a", "[a]", "{a}", "a,b", "%x", "@x", "`x",
    "|", ">", "a|b", "192.168.201.1", "/path/to/.lago/default", "N/A",
    "shut off", "clean, configured", "$LAGO_PREFIX_PATH/scripts/a.sh",
    "a very long line with many words that goes well past the eighty column limit of the emitter",
    "averylonglinewithoutanyspacesatallthatgoeswellpasttheeightycolumnlimitoftheemitterxxxxxxxx",
    "a very long line with 'quotes' and words that goes well past the eighty column limit: yes",
    "a very long line with many words that goes well past the eighty column limit\tof the emitter and more",
    "long line  with double  spaces that goes well past the eighty column limit of  the emitter  yes",
    "a long multi line\nwith many words that goes well past the eighty column limit of the emitter yes\nand more",
    "k" * 130,
]

cases = []
for s in STRINGS:
    for doc in ({"k": s}, {s: "v"}, {"l": [s, [s], {"m": s}]}):
        cases.append({"doc": doc, "yaml": yaml.dump(doc, default_flow_style=False)})
doc = {"a": [], "b": {}, "c": [[], {}, None, True, False, 1.5, 3.0, 1e17, 1e-05, 12, -0.0],
       "d": [{"x": "1", "y": ["a"]}], "e": {"f": {"g": [["h"]]}}}
cases.append({"doc": doc, "yaml": yaml.dump(doc, default_flow_style=False)})
with open("yaml-pyyaml.json", "w") as f:
    json.dump({"pyyaml": yaml.__version__, "cases": cases}, f, indent=1)
    f.write("\n")
