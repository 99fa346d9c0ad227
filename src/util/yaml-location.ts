/**
 * @module yaml-location
 * Where in a YAML file a field is (file, line, field). The code lives in src/root/yaml-location.ts
 * because the root stage, which reads a YAML config of its own, may import only src/root;
 * everything else imports it from here.
 */
export { type FieldPath, formatField, lineOf, parseYaml } from '../root/yaml-location.ts';
