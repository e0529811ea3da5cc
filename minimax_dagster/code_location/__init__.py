"""What the demo's and the deployment's code locations share: the environment they read, the prompt
datasets they serve."""
