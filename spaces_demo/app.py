"""The RAP Space: why each row was kept or dropped, thresholds to move, a new sample to score.

    python spaces_demo/app.py [--dataset SCORED_FOLDER_OR_HUB_ID] [--model SCORER] [--port 7860]

With no arguments (and no RAP_DATASET / RAP_MODEL in the environment) it opens on the embedded visual
world scored by the tiny scorer shipped with the package (rap_hf/embedded_scorer/), scored on the first
start and cached (see rap_hf/demo.py).
"""

import sys

from rap_hf.demo import main

if __name__ == "__main__":
    sys.exit(main())
