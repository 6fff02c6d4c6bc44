"""Oracle simulation on a labelled file: learning curves against random, the label-efficiency ratio, relabelling."""
