"""Names of the synthetic categories and defect types (no imports, so the CLI can list them cheaply).

The categories imitate objects of MVTec 3D-AD; the defect names follow MVTec's folder names where
one exists ("contamination", "crack", "hole", "cut") and add "dent" and "chip" (material broken off an edge).
"""

CATEGORIES = (
    "tire",
    "bagel",
    "cookie",
    "dowel",
    "foam",
    "potato",
    "carrot",
    "bracket",
    "stepblock",
    "connector",
    "flange",
    "heatsink",
    "gear",
)
DEFECTS = ("dent", "contamination", "crack", "hole", "cut", "chip")
