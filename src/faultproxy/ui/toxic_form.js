// The add/edit form of a toxic, built from GET /toxic-types (each field's kind, default, range,
// choices, unit and help), so that the console knows nothing of toxic types itself.
//
//   const form = new ToxicForm(container, types);
//   form.showAdd();                // or form.showEdit(toxic)
//   const body = form.addBody();   // or form.updateBody(): what the API takes

let fieldCounter = 0;

function element(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  for (const c of children) e.append(c);
  return e;
}

// One labelled input for a field description {name, kind, default, min?, max?, options?, unit?, help?}.
function fieldRow(field, value, { disabled = false } = {}) {
  const id = `f${++fieldCounter}-${field.name}`;
  const helpId = `${id}-help`;
  let input;
  if (field.options) {
    input = element('select', { id, name: field.name });
    for (const o of field.options) input.append(element('option', { value: o, textContent: o }));
    input.value = value;
  } else if (field.kind === 'boolean') {
    input = element('input', { id, name: field.name, type: 'checkbox', checked: Boolean(value) });
  } else if (field.kind === 'integer' || field.kind === 'number') {
    input = element('input', { id, name: field.name, type: 'number', value: String(value) });
    input.step = field.kind === 'integer' ? '1' : 'any';
    if (field.min !== undefined) input.min = String(field.min);
    if (field.max !== undefined) input.max = String(field.max);
  } else {
    input = element('input', { id, name: field.name, type: 'text', value: value ?? '' });
    input.spellcheck = false;
  }
  input.disabled = disabled;
  input.dataset.kind = field.kind;
  const range = [];
  if (field.min !== undefined && field.max !== undefined) range.push(`${field.min}..${field.max}`);
  else if (field.min !== undefined) range.push(`≥ ${field.min}`);
  else if (field.max !== undefined) range.push(`≤ ${field.max}`);
  if (field.unit) range.push(field.unit);
  const helpText = [field.help, range.join(' '), `default ${JSON.stringify(field.default)}`]
    .filter(Boolean)
    .join(' · ');
  input.setAttribute('aria-describedby', helpId);
  const label = element('label', { htmlFor: id, textContent: field.name });
  return element('div', { className: 'field' }, label, input, element('small', { id: helpId, textContent: helpText }));
}

// A field's value as the API takes it; undefined when left empty (the API's default or the
// toxic's current value then stands).
function readField(input) {
  switch (input.dataset.kind) {
    case 'boolean':
      return input.checked;
    case 'integer':
    case 'number':
      return input.value.trim() === '' ? undefined : Number(input.value);
    default:
      return input.value;
  }
}

export class ToxicForm {
  constructor(container, description) {
    this.container = container;
    this.fields = Object.fromEntries(description.fields.map((f) => [f.name, f]));
    this.types = description.types;
    this.mode = 'add';
    this.type = null;
  }

  typeInfo(name) {
    return this.types.find((t) => t.name === name);
  }

  showAdd(typeName = this.types[0].name) {
    this.mode = 'add';
    this.render(this.typeInfo(typeName), null);
  }

  showEdit(toxic) {
    this.mode = 'edit';
    this.render(this.typeInfo(toxic.type), toxic);
  }

  render(type, toxic) {
    this.type = type;
    const editing = Boolean(toxic);
    const value = (name) => (editing && toxic[name] !== undefined ? toxic[name] : this.fields[name].default);
    this.container.replaceChildren();

    const typeId = `f${++fieldCounter}-type`;
    const typeSelect = element('select', { id: typeId, name: 'type', disabled: editing });
    for (const t of this.types) typeSelect.append(element('option', { value: t.name, textContent: t.name }));
    typeSelect.value = type.name;
    // A new type: the form is rebuilt with its attributes, keeping the common fields' values.
    typeSelect.addEventListener('change', () => {
      const kept = this.commonValues();
      this.render(this.typeInfo(typeSelect.value), null);
      for (const [k, v] of Object.entries(kept)) this.setCommon(k, v);
      this.container.querySelector('select[name=type]').focus();
    });
    const general = element('fieldset', {}, element('legend', { textContent: 'Toxic' }));
    general.append(
      element('div', { className: 'field' }, element('label', { htmlFor: typeId, textContent: 'type' }), typeSelect),
    );
    // Toxiproxy's update takes attributes and toxicity (ours also the time window and client_cidr):
    // name and stream are fixed once the toxic exists.
    general.append(fieldRow(this.fields.name, value('name'), { disabled: editing }));
    if (type.scope === 'stream') general.append(fieldRow(this.fields.stream, value('stream'), { disabled: editing }));
    for (const name of ['toxicity', 'client_cidr', 'start_after_ms', 'duration_ms']) {
      general.append(fieldRow(this.fields[name], value(name)));
    }
    const attrs = element('fieldset', { className: 'attributes' }, element('legend', { textContent: `${type.name} attributes` }));
    if (type.attributes.length === 0) attrs.append(element('p', { className: 'muted', textContent: 'No attributes.' }));
    for (const a of type.attributes) {
      const current = editing && toxic.attributes && a.name in toxic.attributes ? toxic.attributes[a.name] : a.default;
      const row = fieldRow(a, current);
      row.querySelector('input, select').dataset.attribute = 'true';
      attrs.append(row);
    }
    this.container.append(general, attrs);
  }

  commonValues() {
    const out = {};
    for (const input of this.container.querySelectorAll('[name]:not([data-attribute]):not([name=type])')) {
      out[input.name] = readField(input);
    }
    return out;
  }

  setCommon(name, v) {
    const input = this.container.querySelector(`[name="${name}"]:not([data-attribute])`);
    if (input && v !== undefined && !input.disabled) input.value = String(v);
  }

  attributes() {
    const out = {};
    for (const input of this.container.querySelectorAll('[data-attribute]')) {
      const v = readField(input);
      if (v !== undefined) out[input.name] = v;
    }
    return out;
  }

  // POST /proxies/{p}/toxics: an empty name lets the API name it <type>_<stream>.
  addBody() {
    const c = this.commonValues();
    const body = { type: this.type.name, attributes: this.attributes() };
    if (c.name) body.name = c.name;
    if (c.stream) body.stream = c.stream;
    for (const k of ['toxicity', 'start_after_ms', 'duration_ms']) if (c[k] !== undefined) body[k] = c[k];
    if (c.client_cidr) body.client_cidr = c.client_cidr;
    return body;
  }

  // PATCH /proxies/{p}/toxics/{t}: client_cidr "" clears it.
  updateBody() {
    const c = this.commonValues();
    const body = { attributes: this.attributes(), client_cidr: c.client_cidr ?? '' };
    for (const k of ['toxicity', 'start_after_ms', 'duration_ms']) if (c[k] !== undefined) body[k] = c[k];
    return body;
  }
}
