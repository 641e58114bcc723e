"""Plain logic for the final outputs: training-set selection and the score report."""
