import { Controller, Get, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { CosignClient } from '../engines/cosign/cosign-client.js';
import { SigningKeys } from '../engines/cosign/signing-keys.js';
import { AuthGuard } from '../auth/auth.guard.js';
import { RequireScope } from '../auth/principal.js';
import { AppError } from '../errors/app-error.js';

@ApiTags('signing')
@ApiBearerAuth()
@UseGuards(AuthGuard)
@RequireScope('jobs:read')
@Controller('v1/signing-keys')
export class SigningKeysController {
  constructor(
    private readonly keys: SigningKeys,
    private readonly cosign: CosignClient,
  ) {}

  @Get()
  @ApiOperation({
    summary: 'The configured signing keys, with the public key (PEM) to verify their signatures with `cosign verify --key`.',
  })
  @ApiResponse({
    status: 200,
    schema: {
      type: 'object',
      properties: {
        items: {
          type: 'array',
          items: { type: 'object', properties: { name: { type: 'string' }, public_key: { type: 'string' }, default: { type: 'boolean' } } },
        },
      },
    },
  })
  async list() {
    const items = [];
    for (const key of this.keys.keys) {
      const public_key = await this.cosign.publicKey(key).catch((err: Error) => {
        throw new AppError(
          'unavailable',
          'SIGNING_KEY_UNAVAILABLE',
          `cannot read the public key of ${key.name}: ${err.message.split('\n')[0]}`,
        );
      });
      items.push({ name: key.name, public_key, default: key.name === this.keys.defaultName });
    }
    return { items };
  }
}
