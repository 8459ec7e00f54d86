"""Answer with a trained model for images people bring: preprocessing, input reading, the answer's formats."""
