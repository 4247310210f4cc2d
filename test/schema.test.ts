/** Entities and migrations agree: every mapped column exists in the migrated database with a compatible type. */
import { ENTITY_SCHEMAS } from '../db/entities';
import { createAppOrm } from '../db/orm';
import { ownerClient, testConfig } from './support/stack';

/** MikroORM's column type for PostgreSQL → information_schema's udt_name. */
function udtName(columnType: string): string {
  const base = columnType.replace(/\(.*\)$/, '');
  const aliases: Record<string, string> = {
    int: 'int4',
    integer: 'int4',
    bigint: 'int8',
    boolean: 'bool',
    'double precision': 'float8',
    'text[]': '_text',
    timestamptz: 'timestamptz',
  };
  return aliases[base] ?? base;
}

it('every entity property maps to an existing column of a matching type', async () => {
  const orm = await createAppOrm(testConfig());
  const owner = await ownerClient();
  try {
    const { rows } = await owner.query<{
      table_name: string;
      column_name: string;
      udt_name: string;
      is_nullable: string;
    }>(
      "select table_name, column_name, udt_name, is_nullable from information_schema.columns where table_schema = 'public'",
    );
    const columns = new Map(rows.map((r) => [`${r.table_name}.${r.column_name}`, r]));
    const problems: string[] = [];
    for (const schema of ENTITY_SCHEMAS) {
      const meta = orm.getMetadata().get(schema.meta.className);
      for (const prop of Object.values(meta.properties)) {
        for (const field of prop.fieldNames) {
          const column = columns.get(`${meta.tableName}.${field}`);
          if (!column) {
            problems.push(`${meta.tableName}.${field} (${meta.className}.${prop.name}) is missing`);
            continue;
          }
          const expected = udtName(prop.columnTypes[0] ?? '?');
          if (expected !== column.udt_name) {
            problems.push(
              `${meta.tableName}.${field} is ${column.udt_name}, entity maps ${prop.columnTypes.join()}`,
            );
          }
          if (!prop.nullable && !prop.primary && column.is_nullable === 'YES') {
            problems.push(`${meta.tableName}.${field} is nullable but ${meta.className}.${prop.name} is not`);
          }
        }
      }
    }
    expect(problems).toEqual([]);
  } finally {
    await owner.end();
    await orm.close();
  }
});
