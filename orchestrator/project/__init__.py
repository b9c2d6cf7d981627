"""What a submitted project is: its files, its manifest, the environment it asks for."""
