"""Project tooling that is not part of the deployed package (the image build)."""
