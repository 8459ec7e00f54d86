"""Answer with a trained model for images people bring: preprocessing, input reading, a TensorFlow-free runner."""
