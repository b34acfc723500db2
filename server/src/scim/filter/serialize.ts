import type { AttrPath, Filter, FilterValue, PatchPath } from './ast.js';

/** Canonical text of a filter: parse(serializeFilter(f)) deep-equals f. */
export function serializeFilter(filter: Filter): string {
  switch (filter.op) {
    case 'and':
    case 'or':
      return `(${serializeFilter(filter.left)} ${filter.op} ${serializeFilter(filter.right)})`;
    case 'not':
      return `not (${serializeFilter(filter.filter)})`;
    case 'pr':
      return `${serializeAttrPath(filter.path)} pr`;
    case 'valuePath':
      return `${serializeAttrPath(filter.path)}[${serializeFilter(filter.filter)}]`;
    default:
      return `${serializeAttrPath(filter.path)} ${filter.op} ${serializeValue(filter.value)}`;
  }
}

export function serializeAttrPath(path: AttrPath): string {
  return `${path.uri ? `${path.uri}:` : ''}${path.attr}${path.sub ? `.${path.sub}` : ''}`;
}

export function serializePatchPath(path: PatchPath): string {
  const head = `${path.uri ? `${path.uri}:` : ''}${path.attr}`;
  if (path.filter) return `${head}[${serializeFilter(path.filter)}]${path.sub ? `.${path.sub}` : ''}`;
  return `${head}${path.sub ? `.${path.sub}` : ''}`;
}

function serializeValue(value: FilterValue): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}
