"""Code generation: prompts to files, files to builds, failed builds to fixes."""
