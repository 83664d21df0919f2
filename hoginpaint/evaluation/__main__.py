"""`python -m hoginpaint.evaluation`: see `hoginpaint.evaluation.run`."""
from hoginpaint.evaluation.run import main

if __name__ == "__main__":
    main()
