"""E-mail: composing messages from templates, and delivering them (SMTP or
`.eml` files). The only package that talks SMTP."""
