"""``templates_app.selectors``: the specs a request reads. A version's spec is built once per
process (versions are immutable) and still follows its template's name and active version."""

from __future__ import annotations

import pytest

from templates_app.errors import TemplateNotFound, TemplateVersionNotFound
from templates_app.models import AgentTemplate
from templates_app.selectors import template_spec_for_version, template_spec_get
from templates_app.services import template_version_activate
from tests.factories import make_template, make_version

pytestmark = pytest.mark.django_db


def test_a_versions_spec_is_built_once_and_follows_its_template():
    template = make_template()
    first = template.active_version
    spec = template_spec_for_version(version_id=first.pk)
    assert (spec.name, spec.version_id, spec.is_active_version) == (template.name, first.pk, True)
    assert template_spec_for_version(version_id=first.pk) is spec  # read again: not rebuilt

    second = make_version(template)
    template_version_activate(version=second)
    assert template_spec_for_version(version_id=first.pk).is_active_version is False
    assert template_spec_for_version(version_id=second.pk).is_active_version is True
    assert template_spec_get(name=template.name).version_id == second.pk

    AgentTemplate.objects.filter(pk=template.pk).update(name=template.name + "-renamed")
    assert template_spec_for_version(version_id=first.pk).name == template.name + "-renamed"
    with pytest.raises(TemplateNotFound):
        template_spec_get(name=template.name)
    with pytest.raises(TemplateVersionNotFound):
        template_spec_for_version(version_id=second.pk + 10_000)
