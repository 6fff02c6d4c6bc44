"""Training on the labels and sampling from what was trained: recipes, TRL + PEFT runs, generation."""
