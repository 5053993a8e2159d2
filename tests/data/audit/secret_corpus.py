"""A planted-secrets corpus for ``midstream audit``: fake secrets shaped like the real formats, and clean look-alikes.

Every value is generated at run time from a seeded random generator (nothing secret-shaped is
written in this file, so the project never flags itself). ``corpus(seed)`` returns one file per
planted value, each with some ordinary lines around it, spread over the file types and folder
names a project really has (``env/``, ``build/``, ``dist/``, notebooks, Terraform, Java, XML ...).

The formats follow the public descriptions of each provider's tokens (prefix, alphabet, length)
as documented by the providers and by the rule tests of public secret scanners.
"""

from __future__ import annotations

import base64
import json
import random
import string
from dataclasses import dataclass

LOWER_HEX = "0123456789abcdef"
ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
B64URL = ALNUM + "-_"


@dataclass(frozen=True)
class Planted:
    path: str
    text: str
    secret: bool  # True: a planted secret (must be found); False: a clean look-alike (must not be)
    kind: str


class _Gen:
    def __init__(self, seed: int):
        self.r = random.Random(seed)

    def s(self, alphabet: str, n: int) -> str:
        return "".join(self.r.choice(alphabet) for _ in range(n))

    def alnum(self, n: int) -> str:
        return self.s(ALNUM, n)

    def hex(self, n: int) -> str:
        return self.s(LOWER_HEX, n)

    def upper(self, n: int) -> str:
        return self.s(string.ascii_uppercase + string.digits, n)

    def b64(self, n_bytes: int) -> str:
        return base64.b64encode(self.r.randbytes(n_bytes)).decode()

    def password(self, n: int = 14) -> str:
        return self.s(ALNUM + "!#%^*-_+", n - 2) + self.r.choice(string.digits) + self.r.choice("!#%*")

    def word(self) -> str:
        return self.r.choice(["orders", "billing", "reports", "ingest", "users", "search", "audit", "media"])

    def pem(self, label: str, lines: int = 6) -> str:
        body = "\n".join(self.b64(48) for _ in range(lines))
        return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"

    def jwt(self) -> str:
        def enc(obj) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")

        head = enc({"alg": "HS256", "typ": "JWT"})
        body = enc({"sub": str(self.r.randrange(10**9)), "name": self.word(), "iat": 1700000000 + self.r.randrange(10**7)})
        return f"{head}.{body}.{self.s(B64URL, 43)}"


PRIVATE = " PRIVATE KEY"  # put together at run time: the file itself holds no key header


def corpus(seed: int = 0) -> list[Planted]:
    g = _Gen(seed)
    out: list[Planted] = []

    def secret(path, text, kind):
        out.append(Planted(path, text, True, kind))

    def clean(path, text, kind):
        out.append(Planted(path, text, False, kind))

    w = g.word()
    # -- cloud providers
    secret(".env", f"# local settings\nDEBUG=1\nAWS_ACCESS_KEY_ID={'AKIA' + g.upper(16)}\nREGION=eu-west-1\n", "aws-akia")
    secret("config/aws.ini", f"[default]\nregion = us-east-1\naws_access_key_id = {'ASIA' + g.upper(16)}\n", "aws-asia")
    secret("app/aws_client.py", f'import boto3\n\naws_secret_access_key = "{g.s(B64, 40)}"\n', "aws-secret")
    secret("infra/main.tf", f'provider "azurerm" {{\n  features {{}}\n  client_secret = "{g.s(ALNUM + "~._-", 40)}"\n}}\n',
           "terraform-client-secret")
    secret("deploy/storage.json", json.dumps({"storage": "DefaultEndpointsProtocol=https;AccountName=" + w
                                               + ";AccountKey=" + g.b64(64) + ";EndpointSuffix=core.windows.net"},
                                              indent=2) + "\n", "azure-storage")
    secret("src/Bus.cs", 'var conn = "Endpoint=sb://' + w + '.servicebus.windows.net/;SharedAccessKeyName='
           'RootManageSharedAccessKey;SharedAccessKey=' + g.b64(32) + '";\n', "azure-servicebus")
    secret("web/maps.xml", f'<config>\n  <maps enabled="true"/>\n  <google key="{"AIza" + g.s(B64URL, 35)}"/>\n</config>\n',
           "google-api-key")
    # -- code hosting and registries
    secret("web/src/client.ts", f'const octokit = new Octokit({{ auth: "ghp_{g.alnum(36)}" }});\n', "github-classic")
    secret(".github/workflows/ci.yml", f"env:\n  GH_TOKEN: github_pat_{g.alnum(22)}_{g.alnum(59)}\n", "github-fine-grained")
    secret("tools/oauth.json", json.dumps({"client": "cli", "oauth_token": "gho_" + g.alnum(36)}, indent=2) + "\n",
           "github-oauth")
    secret("infra/gitlab.tf", f'provider "gitlab" {{\n  token = "glpat-{g.s(B64URL, 20)}"\n}}\n', "gitlab-pat")
    secret(".npmrc", f"registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken=npm_{g.alnum(36)}\n", "npmrc")
    secret("scripts/publish.sh", f"#!/bin/sh\nexport NPM_TOKEN=npm_{g.alnum(36)}\nnpm publish\n", "npm-token")
    secret(".pypirc", f"[pypi]\nusername = __token__\npassword = pypi-AgEIcHlwaS5vcmc{g.s(B64URL, 80)}\n", "pypi-token")
    secret(".git-credentials", f"https://{w}:ghp_{g.alnum(36)}@github.com\n", "git-credentials")
    # -- AI providers (MidStream's own business)
    secret("notebooks/explore.ipynb", json.dumps({"cells": [{"cell_type": "code", "source": [
        "from huggingface_hub import login\n", f"login(token=\"hf_{g.s(string.ascii_letters, 34)}\")\n"]}],
        "nbformat": 4}, indent=1) + "\n", "huggingface")
    secret("env/openai.env", f"OPENAI_API_KEY=sk-proj-{g.s(B64URL, 56)}T3BlbkFJ{g.s(B64URL, 56)}\n", "openai-project")
    secret("app/llm.py", f'client = OpenAI(api_key="sk-{g.alnum(20)}T3BlbkFJ{g.alnum(20)}")\n', "openai-legacy")
    secret("web/src/anthropic.ts", f'export const key = "sk-ant-api03-{g.s(B64URL, 93)}AA";\n', "anthropic")
    # -- messaging, payments, mail
    secret("src/main/java/app/Mail.java", f'class Mail {{\n    static final String KEY = "SG.{g.s(B64URL, 22)}.'
           f'{g.s(B64URL, 43)}";\n}}\n', "sendgrid")
    secret("config/twilio.properties", f"twilio.sid=AC{g.hex(32)}\ntwilio.api.key=SK{g.hex(32)}\n", "twilio")
    secret("build/twilio.env", f"TWILIO_AUTH_TOKEN={g.hex(32)}\n", "twilio-auth-token")
    secret("bots/slack_bot.py", f'SLACK_BOT = "xoxb-{g.s(string.digits, 12)}-{g.s(string.digits, 13)}-{g.alnum(24)}"\n',
           "slack-bot")
    secret("docs/alerts.md", f"Alerts go to https://hooks.slack.com/services/T{g.upper(8)}/B{g.upper(10)}/{g.alnum(24)}\n",
           "slack-webhook")
    secret("config/slack.yaml", f"slack:\n  user_token: xoxp-{g.s(string.digits, 12)}-{g.s(string.digits, 12)}-"
           f"{g.s(string.digits, 13)}-{g.hex(32)}\n", "slack-user")
    secret("web/pay.js", f'const stripe = require("stripe")("sk_live_{g.alnum(99)}");\n', "stripe-secret")
    secret("app/models/refunds.rb", f'STRIPE_KEY = "rk_live_{g.alnum(24)}"\n', "stripe-restricted")
    secret("app/payments.rb", f'SQUARE_SECRET = "sq0csp-{g.s(B64URL, 43)}"\n', "square")
    secret("dist/mailer.php", f"<?php\n$mc = new Mailchimp('{g.hex(32)}-us{g.r.randrange(1, 21)}');\n", "mailchimp")
    secret("bots/telegram.py", f'bot = Bot("{g.r.randrange(10**8, 10**9)}:AA{g.s(B64URL, 33)}")\n', "telegram")
    secret("bots/discord.env", f"DISCORD_TOKEN=M{g.s(B64URL, 23)}.{g.s(B64URL, 6)}.{g.s(B64URL, 27)}\n", "discord")
    # -- tokens in headers
    secret("scripts/call_api.sh", f'curl -H "Authorization: Bearer {g.jwt()}" https://api.internal/v1/me\n', "jwt-bearer")
    secret("tests_http/login.json", json.dumps({"id_token": g.jwt(), "expires_in": 3600}, indent=2) + "\n", "jwt-json")
    secret("scripts/sync.sh", f'curl -s -H "Authorization: Bearer {g.s(ALNUM, 40)}" https://api.partner.example.com/x\n',
           "bearer-opaque")
    secret("http/requests.http", f"GET https://api.internal/v1/items\nAuthorization: Bearer {g.s(B64URL, 48)}\n", "bearer-http")
    # -- private keys
    secret("certs/server.pem", g.pem("RSA" + PRIVATE), "rsa-key")
    secret("keys/deploy.key", g.pem("OPENSSH" + PRIVATE, 4), "openssh-key")
    secret("keys/signing.asc", g.pem("PGP" + PRIVATE + " BLOCK", 5), "pgp-key")
    secret("config/tls.yaml", "tls:\n  key: |\n    " + g.pem("EC" + PRIVATE, 3).replace("\n", "\n    ").rstrip() + "\n",
           "ec-key")
    # -- credentials in URLs
    secret("env/db.env", f"DATABASE_URL=postgres://{w}:{g.password()}@db.internal:5432/{w}\n", "url-postgres")
    secret("config/db.yml", f"production:\n  url: mysql://admin:{g.password()}@10.0.3.7:3306/{w}\n", "url-mysql")
    secret("docs/mirror.txt", f"Mirror: https://deploy:{g.password(16)}@git.internal.example.net/{w}.git\n", "url-https")
    secret("web/db.js", f'const uri = "mongodb+srv://{w}:{g.password()}@cluster0.abcde.mongodb.net/app";\n', "url-mongo")
    secret("config/cache.conf", f"cache_url = redis://:{g.password(20)}@cache.internal:6379/0\n", "url-redis-nouser")
    # -- passwords and generic secrets in config files
    secret("config/settings.json", json.dumps({"db": {"user": w, "password": g.password()}}, indent=2) + "\n", "json-password")
    secret("env/.env.production", f"DB_HOST=db\nDB_PASSWORD={g.password()}\n", "dotenv-password")
    secret("config/app.ini", f"[database]\nhost = db\npassword = {g.password()}\n", "ini-password")
    secret("src/main/resources/application.properties",
           f"spring.datasource.url=jdbc:postgresql://db/app\nspring.datasource.password={g.password()}\n",
           "properties-password")
    secret("config/django.yaml", f"django:\n  secret_key: {g.s(ALNUM + '!@#%^&*(-_=+)', 50)}\n", "yaml-secret-key")
    secret("app/settings.py", f'SECRET_KEY = "{g.s(ALNUM + "!@#%^&*(-_=+)", 50)}"\n', "python-secret-key")
    secret("src/main/java/app/Api.java", f'class Api {{\n    private static final String API_KEY = "{g.hex(32)}";\n}}\n',
           "java-api-key")
    secret(".docker/config.json", json.dumps({"auths": {"registry.internal:5000": {"auth": base64.b64encode(
        f"ci:{g.password(24)}".encode()).decode()}}}, indent=2) + "\n", "docker-auth")
    secret("config/service.toml", f'[service]\nname = "{w}"\nauth_token = "{g.alnum(32)}"\n', "toml-auth-token")

    # -- clean look-alikes: placeholders, references, hashes, ids, public material
    clean(".env.example", "OPENAI_API_KEY=<your-openai-key>\nAWS_SECRET_ACCESS_KEY=<your-secret>\n", "angle-placeholder")
    clean("docker-compose.yml", "services:\n  app:\n    environment:\n      API_KEY: ${API_KEY}\n      DB_PASSWORD: ${DB_PASSWORD}\n",
          "env-reference")
    clean("config/example.yaml", "database:\n  password: xxxxxxxxxxxx\n  api_key: XXXXXXXXXXXXXXXXXXXXXXXX\n", "x-placeholder")
    clean("docs/aws.md", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
          "aws-doc-example")
    clean("app/verify.py", f'EXPECTED_SHA256 = "{g.hex(64)}"\nEXPECTED_MD5 = "{g.hex(32)}"\n', "hashes")
    clean("app/version.py", f'GIT_REVISION = "{g.hex(40)}"\n', "commit-sha")
    clean("app/ids.py", f'REQUEST_ID = "{g.hex(8)}-{g.hex(4)}-4{g.hex(3)}-a{g.hex(3)}-{g.hex(12)}"\n', "uuid")
    clean("app/env_config.py", 'import os\n\ntoken = os.environ["API_TOKEN"]\npassword = os.getenv("DB_PASSWORD")\n',
          "indirect")
    clean("app/login.py", 'import getpass\n\npassword = getpass.getpass("Password: ")\n', "getpass")
    clean("config/empty.json", json.dumps({"user": "admin", "password": ""}, indent=2) + "\n", "empty")
    clean("db/seed.sql", f"INSERT INTO users (name, password_hash) VALUES ('{w}', "
          f"'$2b$12${g.s(ALNUM + './', 53)}');\n", "bcrypt-hash")
    clean("chart/templates/secret.yaml", "stringData:\n  api_key: \"{{ .Values.apiKey }}\"\n  password: '{{ .Values.password }}'\n",
          "helm-template")
    clean("README.md", "Call it with `Authorization: Bearer <token>` or `Authorization: Bearer $TOKEN`.\n", "bearer-doc")
    clean("docs/db.md", "Connect with postgres://user:password@localhost:5432/mydb (a local example).\n", "url-placeholder")
    clean("deploy/db.env", "DATABASE_URL=postgres://${DB_USER}:${DB_PASS}@db:5432/app\n", "url-env-reference")
    clean("docs/keys.md", "Keys look like `sk-proj-...` and GitHub tokens like `ghp_...`; never commit them.\n",
          "truncated-prefix")
    clean("config/ci.yml", "env:\n  GITHUB_TOKEN: ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n", "x-token")
    clean("web/index.html", f'<script src="/app.js" integrity="sha384-{g.b64(48)}" crossorigin="anonymous"></script>\n',
          "sri-hash")
    clean("web/logo.html", f'<img src="data:image/png;base64,{g.b64(300)}">\n', "data-uri")
    clean("certs/ca.pem", g.pem("CERTIFICATE") + g.pem("PUBLIC KEY", 3), "public-material")
    clean("config/masked.yaml", "smtp:\n  user: mailer\n  password: '********'\n", "masked")
    clean("app/constants.py", 'PASSWORD_MIN_LENGTH = 12\nTOKEN_URL = "https://oauth2.googleapis.com/token"\n'
          'SECRET_NAME = "prod/db/password"\n', "names-not-values")
    clean(".npmrc.ci", "//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n", "npm-reference")
    clean("app/settings_dev.py", 'SECRET_KEY = "change-me"\nAPI_KEY = "your-api-key-here"\n', "word-placeholder")
    return out


def write(root, items: list[Planted]) -> None:
    for item in items:
        path = root / item.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(item.text)


def repository(base, where: str, items: list[Planted]):
    """A git repository under ``base/where`` holding the corpus in its working tree only (untracked),
    its index only ("index"), or its history only ("history": committed, then removed)."""
    import subprocess
    from pathlib import Path

    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid", "PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, env=env)

    root = Path(base) / where
    root.mkdir()
    git("init", "-q")
    (root / "LICENSE").write_text("MIT\n")
    git("add", "LICENSE")
    git("commit", "-q", "-m", "initial")
    write(root, items)
    if where in ("index", "history"):
        git("add", "-f", "--", *[i.path for i in items])
        if where == "history":
            git("commit", "-q", "-m", "config")
            git("rm", "-q", "-r", "--", *[i.path for i in items])
            git("commit", "-q", "-m", "remove the config")
        else:
            for item in items:
                (root / item.path).unlink()
    return root
