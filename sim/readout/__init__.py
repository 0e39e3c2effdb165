"""How results are put in words and numbers for people (shares, sensitivity indices):
pure functions of numbers and table rows, below every package that shows results."""
